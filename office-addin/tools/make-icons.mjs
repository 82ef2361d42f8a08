// Draws the add-in's ribbon/store icons (16, 32, 64, 80 px) as PNG files in ../assets/.
//
// Why a script instead of an image editor: the icons stay reproducible and reviewable, and the
// repository needs no binary tooling. Run `npm run icons` after changing the drawing; the PNGs are
// committed so the backend can serve them without Node.
//
// The drawing: a rounded square in Excel green with three white "text lines" of a summary, the
// last one shorter, so it reads as "text in, short text out" even at 16 px.
import { writeFileSync, mkdirSync } from "node:fs";
import { deflateSync } from "node:zlib";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SIZES = [16, 32, 64, 80];
const GREEN = [0x21, 0x73, 0x46];
const WHITE = [0xff, 0xff, 0xff];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf) {
  let c = 0xffffffff;
  for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** RGBA colour of pixel (x, y) in an icon of `size` pixels. */
function pixel(x, y, size) {
  const radius = Math.max(2, Math.round(size * 0.18));
  const cx = Math.min(Math.max(x, radius), size - 1 - radius);
  const cy = Math.min(Math.max(y, radius), size - 1 - radius);
  if ((x - cx) ** 2 + (y - cy) ** 2 > radius ** 2) return [0, 0, 0, 0];
  const margin = Math.round(size * 0.2);
  const lineH = Math.max(2, Math.round(size * 0.12));
  const gap = Math.max(1, Math.round((size - 2 * margin - 3 * lineH) / 2));
  for (let i = 0; i < 3; i++) {
    const top = margin + i * (lineH + gap);
    const right = i === 2 ? Math.round(size * 0.58) : size - margin;
    if (y >= top && y < top + lineH && x >= margin && x < right) return [...WHITE, 255];
  }
  return [...GREEN, 255];
}

function png(size) {
  const rows = [];
  for (let y = 0; y < size; y++) {
    const row = [0]; // filter type 0 (none) per scanline
    for (let x = 0; x < size; x++) row.push(...pixel(x, y, size));
    rows.push(Buffer.from(row));
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, no filter, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", deflateSync(Buffer.concat(rows), { level: 9 })),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

const out = join(dirname(fileURLToPath(import.meta.url)), "..", "assets");
mkdirSync(out, { recursive: true });
for (const size of SIZES) writeFileSync(join(out, `icon-${size}.png`), png(size));
console.log(`wrote ${SIZES.map((s) => `icon-${s}.png`).join(", ")} to ${out}`);
