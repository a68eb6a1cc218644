"""The explorer: a local web page over a trained generator (gancli explore), served by the standard library."""
