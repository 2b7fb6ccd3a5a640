"""The cluster's one error for the user (an SDK failure is echolab_host's DockerError)."""

from echolab_host import DockerError


class ClusterError(DockerError):
    """A step failed; the message is one line for the user."""
