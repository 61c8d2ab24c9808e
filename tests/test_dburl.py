"""Names and URLs: pure functions, tested exhaustively (Hypothesis where it pays)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.engine import URL, make_url

from ci_kit.dburl import (
    DRIVERNAME,
    MAX_IDENTIFIER_BYTES,
    advisory_lock_key,
    check_test_name,
    fit_identifier,
    fresh_database_name,
    mask,
    parse_database_url,
    redact,
    render,
    run_base_name,
    template_database_name,
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


def tricky_url(password: str = TRICKY_PASSWORD) -> URL:
    return URL.create(
        DRIVERNAME, username="app", password=password, host="127.0.0.1", database="app_test"
    )


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

    def test_parsing_a_url_object_keeps_its_password(self) -> None:
        assert parse_database_url(tricky_url()).password == TRICKY_PASSWORD

    @pytest.mark.parametrize(
        ("raw", "complaint"),
        [
            ("mysql://app:secret@localhost/app_test", "is not a PostgreSQL URL"),
            ("sqlite:///app_test.db", "is not a PostgreSQL URL"),
            ("postgresql://app:secret@localhost", "names no database"),
            ("not a url at all", "could not be parsed"),
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
        [TRICKY_PASSWORD, "p%40ss%3Aw%2Frd%2520%20%23%3F%2B", "p%40ss%3Aw%2Frd%2520+%23%3F%2B"],
    )
    def test_redact_hides_raw_and_encoded_passwords(self, leak: str) -> None:
        text = f"could not connect with {leak} to the server"
        assert redact(text, tricky_url()) == "could not connect with *** to the server"

    def test_redact_leaves_text_alone_without_a_password(self) -> None:
        url = URL.create(DRIVERNAME, username="app", database="app_test")
        assert redact("nothing to hide", url) == "nothing to hide"


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

    @given(st.text(), st.text())
    def test_lock_keys_are_signed_64_bit_and_distinct(self, a: str, b: str) -> None:
        key = advisory_lock_key(a)
        assert -(2**63) <= key < 2**63
        assert key == advisory_lock_key(a)
        if a != b:
            assert key != advisory_lock_key(b)
