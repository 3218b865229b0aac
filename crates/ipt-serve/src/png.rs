//! Restored images as PNG bytes for the response.

use std::io::Cursor;

use instruct_ipt::image::{DynamicImage, ImageFormat};

use crate::ApiError;

/// `image` as PNG, keeping 8 or 16 bits, gray or colour, and alpha; floating-point images
/// (which PNG cannot hold) become 16-bit.
pub fn encode(image: &DynamicImage) -> Result<Vec<u8>, ApiError> {
    let converted;
    let image = match image {
        DynamicImage::ImageRgb32F(_) => {
            converted = DynamicImage::ImageRgb16(image.to_rgb16());
            &converted
        }
        DynamicImage::ImageRgba32F(_) => {
            converted = DynamicImage::ImageRgba16(image.to_rgba16());
            &converted
        }
        _ => image,
    };
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, ImageFormat::Png).map_err(|error| ApiError::internal(format!("cannot encode the PNG: {error}")))?;
    Ok(bytes.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use instruct_ipt::image::{ImageBuffer, Rgb, Rgba};

    #[test]
    fn depth_and_alpha_survive_and_floats_become_sixteen_bit() {
        let decode = |bytes: Vec<u8>| instruct_ipt::image::load_from_memory(&bytes).unwrap();
        let rgba = DynamicImage::ImageRgba8(ImageBuffer::from_fn(5, 3, |x, y| Rgba([x as u8 * 40, y as u8 * 60, 7, 128])));
        assert_eq!(decode(encode(&rgba).unwrap()), rgba);
        let float = DynamicImage::ImageRgb32F(ImageBuffer::from_fn(4, 2, |x, _| Rgb([x as f32 / 4.0, 0.5, 1.0])));
        let back = decode(encode(&float).unwrap());
        assert_eq!(back, DynamicImage::ImageRgb16(float.to_rgb16()));
    }
}
