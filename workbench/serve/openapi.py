"""The OpenAPI document served at ``/openapi.json`` (written out: the API is small and stable)."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]

_ERROR = {
    "description": "one line of JSON",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_ERRORS = {
    "400": {**_ERROR, "description": "malformed body (the message names the field)"},
    "401": {**_ERROR, "description": "missing, unknown, malformed or expired credentials"},
    "403": {**_ERROR, "description": "revoked key, missing scope, or a token for another trace"},
    "404": {**_ERROR, "description": "no trace with that id or provider response id"},
    "413": {**_ERROR, "description": "body larger than the limit"},
    "415": {**_ERROR, "description": "wrong Content-Type or Content-Encoding"},
    "429": {**_ERROR, "description": "rate limit exceeded (Retry-After says when to retry)"},
    "503": {**_ERROR, "description": "store or spool unavailable; retry"},
}

_FEEDBACK_ITEM = {
    "type": "object",
    "required": ["kind"],
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": ["thumbs", "rating", "correction", "comment"]},
        "trace_id": {"type": "string", "description": "trace id or provider response id; implied by a token"},
        "up": {"type": "boolean", "description": "thumbs: up (true) or down (false)"},
        "value": {"type": "number", "description": "thumbs: 1 or 0; rating: a number within scale"},
        "scale": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2, "default": [1, 5]},
        "text": {"type": "string", "maxLength": 100000, "description": "correction or comment"},
        "user_id": {"type": "string", "maxLength": 190},
        "idempotency_key": {"type": "string", "maxLength": 190, "description": "same key twice stores one row"},
        "metadata": {"type": "object", "description": "JSON object, at most 16 KiB"},
    },
}


def openapi_document() -> dict[str, Any]:
    auth = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "workbench serve",
            "version": "1",
            "description": "OTLP/HTTP traces and user feedback into a workbench store.",
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a project key (wb_sk_…, `workbench keys create`) or a feedback token "
                    "(wbft.…, wb.feedback_token or POST /api/feedback-tokens)",
                }
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "FeedbackItem": _FEEDBACK_ITEM,
            },
        },
        "paths": {
            "/v1/traces": {
                "post": {
                    "summary": "OTLP/HTTP trace export (protobuf or JSON, gzip or not); key scope: ingest",
                    "security": auth,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                            "application/json": {"schema": {"type": "object"}},
                        },
                    },
                    "responses": {
                        "200": {"description": "ExportTraceServiceResponse; partialSuccess lists rejected spans"},
                        **_ERRORS,
                    },
                }
            },
            "/api/feedback": {
                "post": {
                    "summary": "one feedback item (as wb.feedback.thumbs/rating/correction/comment)",
                    "security": auth,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/FeedbackItem"}}},
                    },
                    "responses": {"201": {"description": "the stored feedback row"}, **_ERRORS},
                }
            },
            "/api/feedback/batch": {
                "post": {
                    "summary": "many feedback items; each reports its own outcome",
                    "security": auth,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "items": {
                                            "type": "array",
                                            "items": {"$ref": "#/components/schemas/FeedbackItem"},
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {"description": "{accepted, results: [{ok, feedback | status, error}]}"},
                        **_ERRORS,
                    },
                }
            },
            "/api/feedback-tokens": {
                "post": {
                    "summary": "a browser-safe token for feedback on one trace; key scope: feedback",
                    "security": auth,
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["trace_id"],
                                    "properties": {
                                        "trace_id": {"type": "string"},
                                        "ttl": {"type": "string", "default": "2h"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {"201": {"description": "{token, trace_id, expires_at}"}, **_ERRORS},
                }
            },
            "/healthz": {
                "get": {
                    "summary": "liveness and store reachability",
                    "responses": {"200": {"description": "ok"}, "503": _ERROR},
                }
            },
            "/openapi.json": {
                "get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3.1"}}}
            },
        },
    }
