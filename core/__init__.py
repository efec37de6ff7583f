"""The floor every package stands on: boundary (domain) types, errors, the offline guard and small helpers.
It imports no other package of the project; the wiring of services lives in ``wiring``."""
