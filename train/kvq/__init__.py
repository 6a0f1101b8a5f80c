"""Video quality (KVQ): a fragment video transformer on label-free degradation chains."""
