"""Plumbing every process shares: logging, HTTP guards, start-up checks."""
