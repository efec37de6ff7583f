"""Shared foundations: boundary types, offline guard, CLI helpers, service wiring."""
