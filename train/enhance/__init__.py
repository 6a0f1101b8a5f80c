"""x2 super-resolution task: the enhancement path's fast, regression-trained baseline."""
