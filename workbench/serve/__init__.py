"""`workbench serve`: OTLP/HTTP traces from any language and a feedback API for browsers and back ends.

The only package that imports the ASGI stack (Starlette, uvicorn), and only in ``serve.app``: ``tokens``
is pure so ``wb.feedback_token`` can use it without loading a web server.
"""
