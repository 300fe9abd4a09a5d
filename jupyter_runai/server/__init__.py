"""The Jupyter server extension: ``RunaiApp`` (config and start-up), the REST handlers
under ``/runai/api/v1/``, the event stream, the proxy to workspaces and inference
endpoints, and the OpenAPI document. Handlers only translate HTTP to service calls."""
