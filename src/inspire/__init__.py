"""inspire: train SampleRNN on your own music, generate an abundance, curate it, compose with it."""

__version__ = "0.1.0"
