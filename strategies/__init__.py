"""Strategy files, upload validation, backtest and hyperopt jobs."""
