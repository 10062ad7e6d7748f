"""The seed backend's preprocessing (app/processing/preprocessing.py), as the reference
libbcd is compared with: PIL open + convert("RGB") + numpy; OpenCV RGB->YUV, equalizeHist
of Y, YUV->RGB; float32; centre square crop; cv2.resize INTER_AREA to 224; rounded to
the uint8 image; torchvision ToTensor + Normalize(ImageNet mean/std).

One deliberate difference from the seed: the EXIF orientation is applied
(PIL.ImageOps.exif_transpose), as libbcd's decoder does; the seed showed sideways
photos to the network.
"""
import cv2
import numpy as np
from PIL import Image, ImageOps

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SIZE = 224


def load_rgb(path, exif=True):
    img = Image.open(path)
    if exif:
        img = ImageOps.exif_transpose(img)
    return np.array(img.convert("RGB"))


def normalize_image(rgb):
    yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)
    yuv[:, :, 0] = cv2.equalizeHist(yuv[:, :, 0])
    return cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB).astype(np.float32)


def align_image(img):
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    return img[y0:y0 + s, x0:x0 + s]


def resize_image(img):
    return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def to_uint8(img):
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


_transform = None


def to_tensor(img_u8):
    """torchvision ToTensor + Normalize of the 224x224 uint8 RGB image: a [3,224,224] tensor."""
    global _transform
    if _transform is None:
        import torchvision.transforms as T
        _transform = T.Compose([T.ToTensor(), T.Normalize(MEAN, STD)])
    return _transform(img_u8)


def preprocess_u8(path):
    return to_uint8(resize_image(align_image(normalize_image(load_rgb(path)))))


def preprocess(path):
    return to_tensor(preprocess_u8(path))
