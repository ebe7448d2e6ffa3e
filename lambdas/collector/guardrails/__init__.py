"""Guardrails: SCPs that deny what nobody in a scope used, proposed for a person to review and apply."""
