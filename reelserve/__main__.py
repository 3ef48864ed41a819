from reelserve.cli import app

app()
