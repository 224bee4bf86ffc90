// A PDF of pictures, one picture a page: just what "the whole board as PDF" needs, written
// here (about fifty lines) rather than vendoring a PDF library. Each page holds one JPEG
// (the board page drawn on a canvas) at 800 x 450 points (16:9).
const PAGE_W = 800;
const PAGE_H = 450;

const ascii = (text) => new TextEncoder().encode(text);

// canvases: one per page, all the same size. Returns the PDF as a Blob.
export async function pdfOfCanvases(canvases) {
  const jpegs = [];
  for (const canvas of canvases) {
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
    jpegs.push({ bytes: new Uint8Array(await blob.arrayBuffer()), w: canvas.width, h: canvas.height });
  }
  const parts = [];
  const offsets = []; // byte offset of each object, by number - 1
  let length = 0;
  const put = (chunk) => {
    const bytes = typeof chunk === "string" ? ascii(chunk) : chunk;
    parts.push(bytes);
    length += bytes.length;
  };
  const object = (number, ...chunks) => {
    offsets[number - 1] = length;
    put(`${number} 0 obj\n`);
    chunks.forEach(put);
    put("\nendobj\n");
  };
  put("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n");
  // Objects: 1 catalog, 2 page tree, then per page: page, contents, image.
  const pageNumber = (i) => 3 + i * 3;
  const kids = jpegs.map((_, i) => `${pageNumber(i)} 0 R`).join(" ");
  object(1, "<< /Type /Catalog /Pages 2 0 R >>");
  object(2, `<< /Type /Pages /Kids [${kids}] /Count ${jpegs.length} >>`);
  jpegs.forEach((jpeg, i) => {
    const n = pageNumber(i);
    object(n, `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 ${PAGE_W} ${PAGE_H}] `
      + `/Resources << /XObject << /Im${i} ${n + 2} 0 R >> >> /Contents ${n + 1} 0 R >>`);
    const draw = `q ${PAGE_W} 0 0 ${PAGE_H} 0 0 cm /Im${i} Do Q`;
    object(n + 1, `<< /Length ${draw.length} >>\nstream\n${draw}\nendstream`);
    object(n + 2, `<< /Type /XObject /Subtype /Image /Width ${jpeg.w} /Height ${jpeg.h} `
      + `/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length ${jpeg.bytes.length} >>\nstream\n`,
      jpeg.bytes, "\nendstream");
  });
  const xref = length;
  const count = offsets.length + 1;
  put(`xref\n0 ${count}\n0000000000 65535 f \n`);
  for (const offset of offsets) put(`${String(offset).padStart(10, "0")} 00000 n \n`);
  put(`trailer\n<< /Size ${count} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return new Blob(parts, { type: "application/pdf" });
}
