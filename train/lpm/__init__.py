"""Generative enhancement (LPM): DiT base, ControlNet, consistency distillation to one step."""
