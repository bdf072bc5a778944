// A list that only builds the rows in sight (plus a few), so 100k channels or 5000
// events scroll as smoothly as ten: the container holds one tall spacer, and rows sit
// absolutely at index × row height.

const OVERSCAN = 8;
/** When the list is hidden its height reads 0; it still renders a screenful so it is ready when shown. */
const FALLBACK_HEIGHT = 600;

export class VirtualList {
  /** @param render (index) => an element, or null while the row is still being fetched */
  constructor(container, rowHeight, render) {
    this.container = container;
    this.rowHeight = rowHeight;
    this.render = render;
    this.count = 0;
    this.spacer = document.createElement('div');
    this.spacer.className = 'vlist-spacer';
    container.append(this.spacer);
    container.addEventListener('scroll', () => this.draw(), { passive: true });
  }

  /** New length (and the rows' contents may have changed): redraws what is in sight. */
  update(count) {
    this.count = count;
    this.spacer.style.height = `${count * this.rowHeight}px`;
    this.draw();
  }

  /** The visible index range [first, last). */
  range() {
    const height = this.container.clientHeight || FALLBACK_HEIGHT;
    const first = Math.max(0, Math.floor(this.container.scrollTop / this.rowHeight) - OVERSCAN);
    const last = Math.min(this.count, Math.ceil((this.container.scrollTop + height) / this.rowHeight) + OVERSCAN);
    return [first, last];
  }

  draw() {
    const [first, last] = this.range();
    const rows = [];
    for (let i = first; i < last; i++) {
      const row = this.render(i);
      if (!row) continue;
      row.style.top = `${i * this.rowHeight}px`;
      row.style.height = `${this.rowHeight}px`;
      row.classList.add('vrow');
      rows.push(row);
    }
    this.spacer.replaceChildren(...rows);
  }
}
