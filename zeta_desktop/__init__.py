"""Zeta Desktop: chat with several local GGUF models, routed per prompt."""

__version__ = "0.1.0"
APP_ID = "io.github.zeta_desktop.ZetaDesktop"
APP_NAME = "Zeta Desktop"
