"""Typed async client for the orchestrator's REST API, and the wire models both sides share."""
