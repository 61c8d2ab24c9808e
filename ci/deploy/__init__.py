"""Build, push and deploy one commit of the sample backend: ``invoke deploy.staging``.

The public API is small: the Invoke namespace the root ``tasks.py`` exposes, the
configuration loader, and the values a plan is made of.
"""

from ci.deploy.config import DeployConfig, load_deploy_config
from ci.deploy.errors import DeployError
from ci.deploy.plan import DeployPlan, Masker, Release

__all__ = ["DeployConfig", "DeployError", "DeployPlan", "Masker", "Release", "load_deploy_config"]
