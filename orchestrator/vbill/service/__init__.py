"""The HTTP service (docs/http-api.md): `create_app(Settings.from_env())`, run by `vbill serve`."""

from vbill.service.app import create_app as create_app
from vbill.service.settings import Settings as Settings

__all__ = ["Settings", "create_app"]
