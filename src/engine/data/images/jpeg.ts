import { decode } from 'jpeg-js';
import { UserInputError } from '../../errors';
import { DecodedImage } from './png';

/**
 * JPEG through `jpeg-js` (pure JavaScript, no dependencies, bundled): baseline and progressive, grey and colour.
 * Unlike PNG, JPEG needs Huffman decoding, dequantisation and an inverse DCT per block, too much to own here.
 * Strict decoding: a truncated or corrupt file is an error naming the file, never a half-decoded image.
 */

/** Every JPEG starts with the SOI marker FF D8, then another marker (FF ..). */
export function isJpeg(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;
}

/** Largest image decoded, in megapixels: a class folder of small images, not photographs to be shrunk 1000 times. */
const MAX_MEGAPIXELS = 50;

/** Decodes JPEG bytes to RGB in [0, 1] (grey JPEGs come out with three equal channels); `file` names the file in errors. */
export function decodeJpeg(bytes: Buffer, file: string): DecodedImage {
  if (!isJpeg(bytes)) throw new UserInputError('cannot read the JPEG image: not a JPEG file (its first bytes are not FF D8 FF)', { file });
  let raw: { width: number; height: number; data: Uint8Array };
  try {
    raw = decode(bytes, { useTArray: true, formatAsRGBA: false, tolerantDecoding: false, maxResolutionInMP: MAX_MEGAPIXELS });
  } catch (err) {
    throw new UserInputError(`cannot read the JPEG image: ${(err as Error).message} (a truncated or corrupt file?)`, { file });
  }
  const { width, height } = raw;
  if (width === 0 || height === 0) throw new UserInputError(`cannot read the JPEG image: empty image (${width} x ${height})`, { file });
  if (raw.data.length !== width * height * 3) {
    throw new UserInputError(`cannot read the JPEG image: ${raw.data.length} decoded values for ${width} x ${height} RGB pixels (CMYK JPEGs are not supported)`, { file });
  }
  const data = new Float32Array(raw.data.length);
  for (let i = 0; i < data.length; i++) data[i] = raw.data[i] / 255;
  return { width, height, channels: 3, data };
}
