"""Monte Carlo simulator of a yen carry-trade unwind and Japanese capital repatriation."""

__version__ = "0.1.0"
