"""ReasonBrain: reasoning-aware image editing (He et al., "Reasoning to Edit", ICML 2026).

The package is organised by pipeline step: ``data`` → ``models`` → ``training`` →
``inference`` → ``evaluation`` → ``registry``. Importing it has no side effects and pulls in no
heavy dependency (torch, ray, prefect are imported by the modules that need them).
"""

__version__ = "0.1.0"
