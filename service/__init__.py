"""The hwnas service: the CLI (`hwnas`) now, the FastAPI app and job runner later.

Nothing here imports torch, FastAPI or a runtime at import time: each command imports
what it needs when it runs, so `hwnas spaces list` works on a bare install.
"""
