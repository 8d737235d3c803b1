"""Low-level HTTP/1.1 server and upstream client on uvloop + httptools."""
