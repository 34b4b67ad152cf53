"""The dashboard's own files (stylesheet, vendored htmx), served from the installed package."""

from __future__ import annotations

import os

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

# Pages link the files with the package version in the query (htmx also has it in its name),
# so an upgrade is fetched anew while browsers may keep the files of the running version.
CACHE_CONTROL = "public, max-age=86400"


class PackageFiles(StaticFiles):
    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = CACHE_CONTROL
        return response


def dashboard_static_files() -> StaticFiles:
    return PackageFiles(packages=[("abmhub.ui", "static")])
