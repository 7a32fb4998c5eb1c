"""Networks of the two papers; every model's forward returns logits N x num_classes.

AllCNN32 (CIFAR-10) and AllCNN96 (Cluttered MNIST) follow Achille & Soatto's original TensorFlow
code; MLP, LeNet and ResNet18 (with a dropout bottleneck) follow Adilova, Geiger & Fischer (ICLR 2023).
"""

from infodrop.models.allcnn import AllCNN32, AllCNN96
from infodrop.models.lenet import LeNet
from infodrop.models.mlp import MLP
from infodrop.models.resnet import BasicBlock, ResNet18

__all__ = ["AllCNN32", "AllCNN96", "BasicBlock", "LeNet", "MLP", "ResNet18"]
