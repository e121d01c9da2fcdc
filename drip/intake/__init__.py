"""The webhook (`drip web`): the Starlette app, auth, limits, answers, the OpenAPI description, one module per source. Redis only."""
