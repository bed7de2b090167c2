"""Search strategies behind one ask/tell seam."""
