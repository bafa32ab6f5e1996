"""`make image`: build serving/Dockerfile, the self-contained image Kubernetes runs.

The image bakes in the model versions on disk and the configs `make serve` renders, so both are
brought up to date first (a first export if there is none). Its tag follows the TF Serving
release of tensorflow-serving-api, like the official image it starts from.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable

from serving.docker_server import ImageBuild, docker_build_argv
from serving.errors import DockerUnavailable, ServeError
from serving.lifecycle import ServeSettings, ensure_exported, render_config_files
from serving.model_server_flags import tfs_version

Say = Callable[[str], None]
IMAGE_REPOSITORY = "threshold-serving"  # serving/k8s/base/deployment.yaml runs this image


def default_tag(gpu: bool) -> str:
    """threshold-serving:<release>[-gpu], the name the Kubernetes manifests use."""
    return f"{IMAGE_REPOSITORY}:{tfs_version()}{'-gpu' if gpu else ''}"


def build_image(
    settings: ServeSettings, *, gpu: bool = True, tag: str | None = None, say: Say = print
) -> int:
    """Render the configs and run ``docker build`` (or print it, with settings.dry_run)."""
    build = ImageBuild(tag=tag or default_tag(gpu), tfs_version=tfs_version(), gpu=gpu)
    argv = docker_build_argv(build)
    if settings.dry_run:
        say("image: dry run, the command would be:")
        say(shlex.join(argv))
        return 0
    if shutil.which("docker") is None:
        raise DockerUnavailable(
            "make image needs the docker CLI on PATH (and a Docker engine or a "
            "remote builder); DRY_RUN=1 prints the command"
        )
    ensure_exported(settings, say)
    render_config_files(settings)
    say(f"image: {shlex.join(argv)}")
    returncode = subprocess.run(argv).returncode
    if returncode != 0:
        raise ServeError(f"docker build failed (exit {returncode}); its output is above")
    say(
        f"image: built {build.tag}; push it to your registry and point serving/k8s at it "
        "(kustomize edit set image)"
    )
    return 0
