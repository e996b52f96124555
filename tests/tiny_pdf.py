"A test helper: write a minimal text PDF (it uses pypdf's private `_add_object`, so it stays out of the package)."
from pathlib import Path


def tiny_pdf(path: Path, pages: list[str], title: str = "") -> None:
    "Write a minimal text PDF with one page per string of `pages`."
    import pypdf
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject
    w = pypdf.PdfWriter()
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    for text in pages:
        page = w.add_blank_page(612, 792)
        fonts = DictionaryObject({NameObject("/F1"): w._add_object(font)})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        stream = DecodedStreamObject()
        safe = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        stream.set_data(f"BT /F1 12 Tf 72 720 Td ({safe}) Tj ET".encode("latin-1"))
        page[NameObject("/Contents")] = w._add_object(stream)
    if title:
        w.add_metadata({"/Title": title})
    with open(path, "wb") as f:
        w.write(f)
