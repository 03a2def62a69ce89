"""Networks and their losses: timm backbones, the mask competition's three-head model, and the
factory that picks between them."""
