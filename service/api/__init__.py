"""The HTTP contract: blueprints, request/response schemas, validation, problem+json, OpenAPI."""
