"""The app of scenarios/peers/gunicorn.toml: gunicorn is the server under
test and serves this itself (no origin behind it). Every request gets the
same 32,987-byte page as the built-in origin's (`body_bytes = 32987`)."""

BODY = b"x" * 32987


def app(environ, start_response):
    """Answers every request with BODY."""
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))],
    )
    return [BODY]
