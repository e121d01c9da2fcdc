"""What an operator does to queues, dead letters and messages: one implementation for the CLI and the console."""
