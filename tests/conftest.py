import os

import matplotlib
import torch

# Plain .py tests draw off-screen; the book build keeps the notebook backend.
matplotlib.use("Agg")
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
