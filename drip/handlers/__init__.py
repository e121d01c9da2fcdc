"""The handlers drip ships for any queue: `forward` (POST the message to a URL), `log`, and a
user's own `module:function`. A handler is a callable taking a Message; it succeeds by
returning and fails by raising. It may run more than once for one message (at least once):
the message id is its idempotency key and `message.attempt` says which try it is."""
