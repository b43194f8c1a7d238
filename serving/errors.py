"""Errors the predictor answers with: each carries the HTTP status a client should see."""

from __future__ import annotations


class PredictorError(Exception):
    """An error whose message is safe and useful to show to the client."""

    status = 500

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(PredictorError):
    status = 400


class ModelNotFound(PredictorError):
    status = 404


class MethodNotAllowed(PredictorError):
    status = 405


class PayloadTooLarge(PredictorError):
    status = 413


class UnsupportedMediaType(PredictorError):
    status = 415


class NotReady(PredictorError):
    status = 503


class Overloaded(PredictorError):
    """The batching queue is full: the client should retry shortly."""

    status = 503
