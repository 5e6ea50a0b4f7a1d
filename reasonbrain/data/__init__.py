"""Data layer: the manifest contract, ReasonSynth, importers, validation, torch datasets.

Never imports ``reasonbrain.models``.
"""
