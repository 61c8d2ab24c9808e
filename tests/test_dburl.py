"""Names and URLs: pure functions, tested exhaustively (Hypothesis where it pays)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL, make_url

from ci_kit.dburl import (
    DRIVERNAME,
    MAX_IDENTIFIER_BYTES,
    advisory_lock_key,
    check_test_name,
    configured_drivername,
    environment_url,
    fit_identifier,
    fresh_database_name,
    mask,
    parse_database_url,
    redact,
    render,
    run_base_name,
    secret_forms,
    template_database_name,
    url_secrets,
    with_database,
    worker_database_name,
)
from ci_kit.errors import InvalidDatabaseUrl, UnsafeDatabaseName

TRICKY_PASSWORD = "p@ss:w/rd%20 #?+"
names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=120,
)
worker_ids = st.integers(min_value=0, max_value=999).map(lambda n: f"gw{n}")
secrets = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1)
# libpq's names are case-sensitive, so a misspelt one fails, with the URL in the message.
secret_keys = st.sampled_from(["password", "sslpassword", "PASSWORD", "SslPassword"])


def tricky_url(password: str = TRICKY_PASSWORD) -> URL:
    return URL.create(
        DRIVERNAME, username="app", password=password, host="127.0.0.1", database="app_test"
    )


def url_with_secrets(password: str, key: str, in_query: str, ssl_password: str) -> URL:
    """A secret in every place a URL can hold one, between parameters that are not."""
    query = {
        "application_name": "kit",
        key: in_query,
        "sslmode": "disable",
        "sslpassword": ssl_password,
    }
    return tricky_url(password).set(port=5432, query=query)


class TestWorkerNames:
    def test_serial_run_keeps_the_base_name(self) -> None:
        assert worker_database_name("finance_report_test", None) == "finance_report_test"
        assert worker_database_name("finance_report_test", "master") == "finance_report_test"

    def test_workers_get_the_gw_suffix(self) -> None:
        assert worker_database_name("finance_report_test", "gw0") == "finance_report_test_gw0"
        assert worker_database_name("finance_report_test", "gw11") == "finance_report_test_gw11"

    def test_long_name_keeps_its_worker_suffix_and_fits(self) -> None:
        name = worker_database_name("x" * 80, "gw3")
        assert name.endswith("_gw3")
        assert len(name.encode()) == MAX_IDENTIFIER_BYTES

    def test_multibyte_names_are_cut_on_a_character_boundary(self) -> None:
        name = fit_identifier("é" * 40, "_gw1")
        assert len(name.encode()) <= MAX_IDENTIFIER_BYTES
        name.encode().decode()  # would raise on a split character

    @given(names, worker_ids)
    def test_every_derived_name_fits(self, base: str, worker: str) -> None:
        for name in (
            worker_database_name(base, worker),
            worker_database_name(base, None),
            template_database_name(base, "ab" * 32),
            fresh_database_name(worker_database_name(base, worker), 12),
            run_base_name(base, "0123456789ab"),
        ):
            assert len(name.encode()) <= MAX_IDENTIFIER_BYTES

    @given(names, names, worker_ids)
    def test_distinct_bases_never_share_a_worker_name(self, a: str, b: str, worker: str) -> None:
        if a != b:
            assert worker_database_name(a, worker) != worker_database_name(b, worker)

    @given(names, worker_ids, worker_ids)
    def test_distinct_workers_never_share_a_name(self, base: str, w1: str, w2: str) -> None:
        if w1 != w2:
            assert worker_database_name(base, w1) != worker_database_name(base, w2)

    @given(names)
    def test_short_names_are_unchanged(self, base: str) -> None:
        if len(base.encode()) <= MAX_IDENTIFIER_BYTES:
            assert fit_identifier(base) == base

    def test_template_name_carries_the_schema_hash(self) -> None:
        assert template_database_name("app_test", "0123456789abcdef") == "app_test_tpl_0123456789ab"

    def test_a_suffix_too_long_for_any_name_is_refused(self) -> None:
        with pytest.raises(UnsafeDatabaseName):
            fit_identifier("app_test", "_" * 60)


class TestUrls:
    def test_render_keeps_the_password_and_mask_hides_it(self) -> None:
        url = tricky_url()
        assert make_url(render(url)).password == TRICKY_PASSWORD
        assert TRICKY_PASSWORD not in mask(url)
        assert "***" in mask(url)

    def test_str_of_a_url_masks_the_password_which_is_why_render_exists(self) -> None:
        assert "***" in str(tricky_url())

    @given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1))
    def test_any_password_survives_derivation_and_rendering(self, password: str) -> None:
        derived = with_database(tricky_url(password), "app_test_gw7")
        assert derived.password == password
        assert derived.database == "app_test_gw7"
        assert make_url(render(derived)).password == password

    @pytest.mark.parametrize(
        "raw",
        [
            "postgresql://app@localhost/app_test",
            "postgres://app@localhost/app_test",
            "postgresql+psycopg2://app@localhost/app_test",
        ],
    )
    def test_postgres_urls_are_normalised_to_psycopg3(self, raw: str) -> None:
        url = parse_database_url(raw)
        assert url.drivername == DRIVERNAME
        assert url.database == "app_test"

    @pytest.mark.parametrize("space", ["\n", " ", "\r\n", "\t", " \n"])
    def test_whitespace_around_a_url_from_the_environment_is_dropped(self, space: str) -> None:
        """A CI secret pasted with its newline: no database name may end in it."""
        url = parse_database_url(f"{space}postgresql://app:pw@h/app_test{space}")
        assert url.database == "app_test"
        assert configured_drivername(f"postgresql://app:pw@h/app_test{space}") == "postgresql"

    @pytest.mark.parametrize(
        "scheme", ["postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg"]
    )
    def test_url_env_keeps_the_configured_scheme_and_the_kit_connects_with_psycopg(
        self, scheme: str
    ) -> None:
        raw = f"{scheme}://app:{quote(TRICKY_PASSWORD, safe='')}@h:5432/app_test"
        url = parse_database_url(raw)
        assert url.drivername == DRIVERNAME
        shown = environment_url(with_database(url, "app_test_gw1"), configured_drivername(raw))
        assert shown.startswith(f"{scheme}://app:")
        assert make_url(shown).password == TRICKY_PASSWORD
        assert make_url(shown).database == "app_test_gw1"

    @given(
        secrets.filter(lambda text: "\x00" not in text),
        names.filter(lambda text: "\x00" not in text),
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            min_size=1,  # SQLAlchemy drops a query key whose value is empty
        ),
    )
    def test_url_env_reads_back_the_same_in_libpq_and_sqlalchemy(
        self, password: str, database: str, application_name: str
    ) -> None:
        """Spaces, ``+`` and ``%`` anywhere: what psycopg connects with is what the kit meant."""
        url = tricky_url(password).set(
            database=database, port=5432, query={"application_name": application_name}
        )
        shown = environment_url(url, "postgresql")
        parsed = make_url(shown)
        assert (parsed.password, parsed.database) == (password, database)
        assert parsed.query["application_name"] == application_name
        libpq = conninfo_to_dict(shown)
        assert (libpq["password"], libpq["dbname"]) == (password, database)
        assert libpq.get("application_name", "") == application_name

    def test_parsing_a_url_object_keeps_its_password(self) -> None:
        assert parse_database_url(tricky_url()).password == TRICKY_PASSWORD

    @pytest.mark.parametrize(
        ("raw", "complaint"),
        [
            ("mysql://app:secret@localhost/app_test", "is not a PostgreSQL URL"),
            ("sqlite:///app_test.db", "is not a PostgreSQL URL"),
            ("postgresql://app:secret@localhost", "names no database"),
            ("not a url at all", "could not be parsed"),
            ("postgresql://app:secret@127.0.0.1:abc/app_test", "port in the database URL"),
            ("postgresql://app:sec@ret@127.0.0.1/app_test", "must be percent-encoded (@ as %40"),
            ("postgresql://app:sec@r:et@127.0.0.1/app_test", "must be percent-encoded (@ as %40"),
            ("postgresql://app:secret@h1:1,h2:5432/app_test", "names several hosts"),
            ("postgresql://app:secret@/app_test?host=h1:1&host=h2:5432", "names several hosts"),
            ("postgresql://app:secret@/app_test?host=h1,h2", "names several hosts"),
            ("postgresql://app:secret@h/app_test?port=1&port=2", "names several hosts"),
        ],
    )
    def test_bad_urls_get_one_clear_line_without_the_password(
        self, raw: str, complaint: str
    ) -> None:
        with pytest.raises(InvalidDatabaseUrl) as caught:
            parse_database_url(raw)
        message = str(caught.value)
        assert complaint in message
        assert "secret" not in message
        assert "\n" not in message

    @pytest.mark.parametrize(
        "leak",
        [
            TRICKY_PASSWORD,
            "p%40ss%3Aw%2Frd%2520%20%23%3F%2B",
            "p%40ss%3Aw%2Frd%2520+%23%3F%2B",
            "p%40ss%3Aw%2Frd%2520 %23%3F+",  # SQLAlchemy's rendering of a password
            "p%40ss%3Aw/rd%2520%20%23%3F%2B",  # urllib.parse.quote's default
        ],
    )
    def test_redact_hides_raw_and_encoded_passwords(self, leak: str) -> None:
        text = f"could not connect with {leak} to the server"
        assert redact(text, tricky_url()) == "could not connect with *** to the server"

    @given(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12),
        st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12),
    )
    def test_a_password_inside_a_name_masks_the_password_never_the_name(
        self, password: str, before: str, after: str
    ) -> None:
        """Password ``test``, database ``hunt_short_test_gw1``: the name is shown whole."""
        name = f"{before}{password}{after}"
        url = tricky_url(password).set(database=name)
        # A password that is a whole part of what is shown ("0" of 127.0.0.1) is masked there.
        assume(redact(mask(url), url) == mask(url))
        assert redact(f"database {name!r} is in use", url) == f"database {name!r} is in use"
        assert redact(render(url), url) == mask(url)
        assert redact(f"password={password} dbname={name}", url) == f"password=*** dbname={name}"

    def test_redact_leaves_text_alone_without_a_password(self) -> None:
        url = URL.create(DRIVERNAME, username="app", database="app_test")
        assert redact("nothing to hide", url) == "nothing to hide"


class TestSecrets:
    """Every place a URL holds a secret is masked: the password and libpq's query ones."""

    def test_a_password_in_the_query_is_masked_and_kept_for_connecting(self) -> None:
        url = parse_database_url("postgresql://app@127.0.0.1:1/app_test?password=hunter2")
        assert mask(url) == "postgresql+psycopg://app@127.0.0.1:1/app_test?password=***"
        assert url_secrets(url) == ("hunter2",)
        assert make_url(render(url)).query["password"] == "hunter2"

    def test_every_value_of_a_repeated_secret_parameter_is_masked(self) -> None:
        url = make_url("postgresql://app@h/app_test?sslpassword=one&sslpassword=two&sslmode=x")
        assert mask(url) == (
            "postgresql://app@h/app_test?sslmode=x&sslpassword=***&sslpassword=***"
        )
        assert redact("one two x", url) == "*** *** x"

    def test_empty_secrets_hide_nothing(self) -> None:
        url = make_url("postgresql://app:@h/app_test?password=")
        assert url_secrets(url) == ()
        assert redact("nothing to hide", url) == "nothing to hide"

    @given(secrets, secret_keys, secrets, secrets)
    def test_mask_does_not_depend_on_the_secrets(
        self, password: str, key: str, in_query: str, ssl_password: str
    ) -> None:
        url = url_with_secrets(password, key, in_query, ssl_password)
        masked = mask(url)
        assert masked == mask(url_with_secrets("a", key, "b", "c"))
        assert make_url(masked).password == "***"
        assert make_url(masked).query["application_name"] == "kit"

    @given(secrets, secret_keys, secrets, secrets)
    def test_no_form_of_any_secret_survives_mask(
        self, password: str, key: str, in_query: str, ssl_password: str
    ) -> None:
        url = url_with_secrets(password, key, in_query, ssl_password)
        forms = secret_forms(url)
        # A secret that is also part of what is shown ("app", "=") cannot be missing from it.
        shown = mask(url_with_secrets("a", key, "b", "c"))
        assume(not any(form in shown for form in forms))
        masked = mask(url)
        assert not [form for form in forms if form in masked]

    @given(secrets, secret_keys, secrets, secrets)
    def test_no_form_of_any_secret_survives_redact(
        self, password: str, key: str, in_query: str, ssl_password: str
    ) -> None:
        url = url_with_secrets(password, key, in_query, ssl_password)
        forms = secret_forms(url)
        # ``***`` is what a secret becomes; a secret with a star cannot be told from it.
        assume(not any("*" in form for form in forms))
        # A secret inside a word of what is not secret ("pp" in "app") is not masked there.
        shown = mask(url_with_secrets("a", key, "b", "c"))
        assume(not any(form in shown for form in forms))
        text = " | ".join([render(url), str(url), *sorted(forms)])
        redacted = redact(text, url)
        assert not [form for form in forms if form in redacted]

    @given(secrets, st.sampled_from(["userinfo", "password", "sslpassword", "PASSWORD"]))
    def test_a_rendered_url_redacts_to_its_mask(self, secret: str, place: str) -> None:
        """Whatever form the URL renders a secret in, redact knows it."""
        if place == "userinfo":
            url = tricky_url(secret)
        else:
            url = URL.create(
                DRIVERNAME,
                username="app",
                host="127.0.0.1",
                database="app_test",
                query={"sslmode": "disable", place: secret},
            )
        masked = mask(url)
        assume(not any(form in masked for form in secret_forms(secret)))
        assert redact(render(url), url) == masked
        assert redact(str(url), url) == masked

    @given(secrets)
    def test_the_forms_of_a_url_are_those_of_its_secrets(self, secret: str) -> None:
        url = url_with_secrets(secret, "password", secret + "!", "x" + secret)
        expected = secret_forms(secret) | secret_forms(secret + "!") | secret_forms("x" + secret)
        assert secret_forms(url) == expected
        assert secret in secret_forms(secret)

    @given(
        st.dictionaries(
            st.text(min_size=1).filter(lambda key: key.lower() not in {"password", "sslpassword"}),
            st.text() | st.lists(st.text(), min_size=1, max_size=3).map(tuple),
            max_size=4,
        )
    )
    def test_without_secret_parameters_mask_is_sqlalchemys_rendering(
        self, query: dict[str, str | tuple[str, ...]]
    ) -> None:
        url = tricky_url().set(query=query)
        assert mask(url) == url.render_as_string(hide_password=True)


class TestSafety:
    @pytest.mark.parametrize("base", ["app_test", "test", "TEST_finance", "ci_kit_tests"])
    def test_test_like_names_are_accepted(self, base: str) -> None:
        check_test_name(base, allow_any_name=False)

    @pytest.mark.parametrize("base", ["production", "finance", "postgres"])
    def test_other_names_are_refused_unless_allowed(self, base: str) -> None:
        with pytest.raises(UnsafeDatabaseName, match="--ci-kit-allow-any-name"):
            check_test_name(base, allow_any_name=False)
        check_test_name(base, allow_any_name=True)

    @pytest.mark.parametrize("base", ["", "te\x00st"])
    def test_empty_or_nul_names_are_always_refused(self, base: str) -> None:
        with pytest.raises(UnsafeDatabaseName):
            check_test_name(base, allow_any_name=True)

    @given(st.text(alphabet=st.characters(blacklist_characters="\x00"), min_size=1))
    def test_an_accepted_base_keeps_test_in_every_name_the_kit_derives(self, stem: str) -> None:
        """However long (in bytes) or wherever 'test' is, an accepted base keeps it."""
        for base in (f"test_{stem}", f"{stem}_test", f"{stem}test{stem}"):
            try:
                check_test_name(base, allow_any_name=False)
            except UnsafeDatabaseName as refused:
                refusal = str(refused)
            else:
                refusal = ""
            if refusal:
                assert "shorten it" in refusal or "not valid UTF-8" in refusal
                continue
            worker = worker_database_name(base, "gw99")
            for name in (
                worker_database_name(base, None),
                worker,
                template_database_name(base, "f" * 64),
                fresh_database_name(worker, 9999),
                worker_database_name(run_base_name(base, "a" * 12), "gw99"),
            ):
                assert "test" in name.lower()
                assert len(name.encode()) <= 63

    @pytest.mark.parametrize("base", ["x" * 61 + "_test", "é" * 30 + "_test", "x" * 55 + "_test"])
    def test_a_base_whose_names_would_lose_test_is_refused(self, base: str) -> None:
        with pytest.raises(UnsafeDatabaseName, match=r"(PostgreSQL names hold 63|lose 'test')"):
            check_test_name(base, allow_any_name=False)

    @given(st.text(), st.text())
    def test_lock_keys_are_signed_64_bit_and_distinct(self, a: str, b: str) -> None:
        key = advisory_lock_key(a)
        assert -(2**63) <= key < 2**63
        assert key == advisory_lock_key(a)
        if a != b:
            assert key != advisory_lock_key(b)
