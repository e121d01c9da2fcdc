"""drip's processes: supervisor, worker pool, dramatiq actors and broker, web serving, the recorder process, `drip dev` and its embedded servers."""
