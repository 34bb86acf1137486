"""Disk images in and out of snapshots, over the EBS direct APIs of a running server, as
AWS's coldsnap does: `snapferry upload` and `snapferry download`. These are clients: they
speak to the server through boto3 with the user's own credentials, like any other tool."""
