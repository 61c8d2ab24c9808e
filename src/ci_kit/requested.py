"""``-p ci_kit.requested``: the kit is on for this run, whether any setting is given or not.

``python -m ci_kit pytest`` starts pytest with it; so may anyone. It holds no
hooks: the plugin only asks whether it was loaded.
"""

PLUGIN_NAME = __name__
"""The name pytest registers this module under when ``-p`` loads it."""
