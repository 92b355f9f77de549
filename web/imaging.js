// Picture arithmetic for the page, written to give the same numbers as styletune's Python side.
//
// A picture is {width, height, data}: data is a Float32Array of height*width*3 values in
// [0, 1], row by row, RGB interleaved: the NHWC layout both networks take, so a picture
// becomes a tensor without copying.
//
// The in-browser result is tested against the Python result (mean difference <= 0.01), so
// every step the Python side takes is repeated here exactly rather than approximated with
// the canvas: the canvas's own scaling filter is unspecified and differs between browsers.

/** Python's round(): halves go to the even neighbour (round(2.5) == 2), unlike Math.round. */
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function makePicture(width, height, data = null) {
  return { width, height, data: data ?? new Float32Array(width * height * 3) };
}

/** Decode an image file or blob to a picture, with no colour management (pixels as stored). */
export async function decode(blob) {
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none',
                                                 imageOrientation: 'from-image' });
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const pic = makePicture(canvas.width, canvas.height);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    pic.data[j] = rgba[i] / 255;
    pic.data[j + 1] = rgba[i + 1] / 255;
    pic.data[j + 2] = rgba[i + 2] / 255;
  }
  return pic;
}

/** Draw a picture on a canvas (rounded to 8 bits, as a PNG would store it). */
export function draw(pic, canvas) {
  canvas.width = pic.width;
  canvas.height = pic.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const img = ctx.createImageData(pic.width, pic.height);
  for (let i = 0, j = 0; j < pic.data.length; i += 4, j += 3) {
    for (let c = 0; c < 3; c++) img.data[i + c] = Math.round(Math.min(1, Math.max(0, pic.data[j + c])) * 255);
    img.data[i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// -- Lanczos resizing, as Pillow does it --------------------------------------------------
// nst.images.resize resizes each channel as a float image with Pillow's LANCZOS filter
// (antialiased: when shrinking, the filter is stretched by the shrink factor). Pillow's
// weights are reproduced here term for term (libImaging/Resample.c, precompute_coeffs).

function sinc(x) {
  if (x === 0) return 1;
  const px = Math.PI * x;
  return Math.sin(px) / px;
}

function lanczos3(x) {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}

function coefficients(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 3 * filterscale;
  const rows = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const w = new Float64Array(xmax - xmin);
    let sum = 0;
    for (let x = 0; x < w.length; x++) {
      w[x] = lanczos3((x + xmin - center + 0.5) / filterscale);
      sum += w[x];
    }
    if (sum !== 0) for (let x = 0; x < w.length; x++) w[x] /= sum;
    rows.push({ start: xmin, w });
  }
  return rows;
}

/** Resize to exactly width x height (Pillow LANCZOS on float channels, then clipped to [0, 1]). */
export function resize(pic, width, height) {
  if (pic.width === width && pic.height === height) return pic;
  let src = pic;
  if (width !== src.width) {  // horizontal pass
    const cs = coefficients(src.width, width);
    const out = makePicture(width, src.height);
    for (let y = 0; y < src.height; y++) {
      const row = y * src.width * 3;
      for (let x = 0; x < width; x++) {
        const { start, w } = cs[x];
        let r = 0, g = 0, b = 0;
        for (let k = 0; k < w.length; k++) {
          const i = row + (start + k) * 3;
          r += w[k] * src.data[i]; g += w[k] * src.data[i + 1]; b += w[k] * src.data[i + 2];
        }
        const o = (y * width + x) * 3;
        out.data[o] = r; out.data[o + 1] = g; out.data[o + 2] = b;
      }
    }
    src = out;
  }
  if (height !== src.height) {  // vertical pass
    const cs = coefficients(src.height, height);
    const out = makePicture(src.width, height);
    const stride = src.width * 3;
    for (let y = 0; y < height; y++) {
      const { start, w } = cs[y];
      for (let x = 0; x < stride; x++) {
        let v = 0;
        for (let k = 0; k < w.length; k++) v += w[k] * src.data[(start + k) * stride + x];
        out.data[y * stride + x] = v;
      }
    }
    src = out;
  }
  for (let i = 0; i < src.data.length; i++) src.data[i] = Math.min(1, Math.max(0, src.data[i]));
  return src;
}

/** nst.images.resize_longest: the longest side becomes `side`, aspect kept. */
export function resizeLongest(pic, side) {
  const scale = side / Math.max(pic.width, pic.height);
  return resize(pic, Math.max(1, pyRound(pic.width * scale)), Math.max(1, pyRound(pic.height * scale)));
}

export function crop(pic, top, left, height, width) {
  const out = makePicture(width, height);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * pic.width + left) * 3;
    out.data.set(pic.data.subarray(from, from + width * 3), y * width * 3);
  }
  return out;
}

/** nst.images.center_crop_square: shortest side to `side`, then the centre square. */
export function centerCropSquare(pic, side) {
  const scale = side / Math.min(pic.width, pic.height);
  const r = resize(pic, Math.max(side, pyRound(pic.width * scale)), Math.max(side, pyRound(pic.height * scale)));
  return crop(r, Math.floor((r.height - side) / 2), Math.floor((r.width - side) / 2), side, side);
}

/** Pad at the bottom and right by mirroring, edge pixel repeated (numpy's "symmetric"), to multiples of `factor`. */
export function padSymmetric(pic, factor) {
  const ph = (factor - (pic.height % factor)) % factor;
  const pw = (factor - (pic.width % factor)) % factor;
  if (!ph && !pw) return pic;
  const mirror = (i, n) => (i < n ? i : 2 * n - 1 - i);
  const out = makePicture(pic.width + pw, pic.height + ph);
  for (let y = 0; y < out.height; y++) {
    const sy = mirror(y, pic.height);
    for (let x = 0; x < out.width; x++) {
      const s = (sy * pic.width + mirror(x, pic.width)) * 3, o = (y * out.width + x) * 3;
      out.data[o] = pic.data[s]; out.data[o + 1] = pic.data[s + 1]; out.data[o + 2] = pic.data[s + 2];
    }
  }
  return out;
}

/** nst.arbitrary._working_hw: long side `side`, each side rounded to a multiple of 4. */
export function workingSize(height, width, side) {
  const scale = side / Math.max(height, width);
  return [Math.max(4, pyRound(height * scale / 4) * 4), Math.max(4, pyRound(width * scale / 4) * 4)];
}

export function clip01(pic) {
  for (let i = 0; i < pic.data.length; i++) pic.data[i] = Math.min(1, Math.max(0, pic.data[i]));
  return pic;
}

/** (1 - t) * a + t * b, element by element: nst.arbitrary.blend. */
export function blend(a, b, t) {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
  return out;
}
