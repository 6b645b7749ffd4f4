// Sequential end-to-end tests (being written).
