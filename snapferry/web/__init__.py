"""The copies page at /_snapferry/: an account's snapshots, images and copies, live."""
