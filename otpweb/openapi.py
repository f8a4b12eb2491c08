"""The OpenAPI 3.1 description of the validate API, served at /api/openapi.json (written here, next to nothing else:
the API has two calls)."""

from __future__ import annotations

from typing import Any

from otpbase.version import version_line

__all__ = ["document"]

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}
_DECISION = {
    "type": "object", "required": ["result", "message"],
    "properties": {
        "result": {"type": "string", "enum": ["accept", "reject", "challenge"]},
        "transaction_id": {"type": "string", "description": "with result challenge: send it back with the code alone"},
        "message": {"type": "string", "description": "a short text for the user; never says which factor failed"},
    },
}


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _responses(ok: str) -> dict[str, Any]:
    def error(text: str) -> dict[str, Any]:
        return {"description": text, "content": _json("Error")}

    return {
        "200": {"description": ok, "content": _json("Decision")},
        "400": error("malformed body: one line says what is wrong"),
        "401": error("missing or wrong API key"),
        "429": {"description": "this application caused too many failed logins lately: try again later",
                "content": _json("Decision")},
        "503": error("the store cannot be used right now"),
    }


def _operation(summary: str, description: str, body: dict[str, Any], ok: str) -> dict[str, Any]:
    return {"post": {"summary": summary, "description": description, "security": [{"apiKey": []}],
                     "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
                     "responses": _responses(ok)}}


def document() -> dict[str, Any]:
    check = {"type": "object", "required": ["user", "pass"], "additionalProperties": False, "properties": {
        "user": {"type": "string"},
        "pass": {"type": "string", "description": "password + code (the code alone with transaction_id, or for an "
                                                  "application with first_factor none)"},
        "transaction_id": {"type": "string", "description": "of the challenge this code answers"}}}
    trigger = {"type": "object", "required": ["user"], "additionalProperties": False,
               "properties": {"user": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "otp-web validate API", "version": version_line("otp-web").split(" ", 1)[1],
                 "description": "Second-factor checks for applications, on the same users, tokens, lockouts and "
                                "replay protection as the RADIUS and PAM doors."},
        "paths": {
            "/api/v1/validate/check": _operation(
                "Check a user's password and one-time code",
                "Every decision is 200: accept, reject, or challenge (the password was right: send the code with the "
                "transaction_id; an e-mail/SMS code was sent).", check, "the decision"),
            "/api/v1/validate/trigger": _operation(
                "Send the user an e-mail/SMS code",
                "Answers challenge with a transaction_id for every user name, known or not.", trigger,
                "the challenge"),
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "the key of a [[web.apps]] entry"}},
            "schemas": {"Decision": _DECISION, "Error": _ERROR},
        },
    }
