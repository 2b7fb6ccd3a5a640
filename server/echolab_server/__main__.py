"""``python3 -m echolab_server --variant poll``: the command line (``cli``), then the variant."""

import sys

from .cli import parse_settings
from .server import ServerFailed
from .variants import VariantUnavailable, server_class


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    try:
        server = server_class(settings.variant)(settings)
    except VariantUnavailable as error:
        print(f"echolab_server: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(
            f"echolab_server: cannot listen on {settings.host}:{settings.port} "
            f"(or stats port {settings.stats_port}): {error.strerror or error}",
            file=sys.stderr,
        )
        return 1
    try:
        server.serve_until_signalled()
    except ServerFailed as error:
        print(f"echolab_server: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
