// facepipe people view: progressive enhancement only. Every action works as a plain form; this adds
// keyboard review (J/K or arrows to move, A/R/N to act), drag-and-drop search and confirm prompts.

function reviewKeys() {
  const list = document.querySelector('[data-keyboard-list]');
  if (!list) return;
  const items = () => [...list.querySelectorAll(':scope > li')];
  const focused = () => items().indexOf(document.activeElement?.closest('li'));
  const focusAt = (i) => {
    const all = items();
    if (all.length === 0) return;
    all[Math.max(0, Math.min(all.length - 1, i))].focus();
  };
  const start = Number(new URLSearchParams(location.search).get('focus') ?? '0');
  focusAt(Number.isFinite(start) ? start : 0);
  document.addEventListener('keydown', (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || e.target.matches('input, textarea, select')) return;
    const i = focused();
    const key = e.key.toLowerCase();
    if (key === 'j' || key === 'arrowdown' || key === 'arrowright') {
      focusAt(i < 0 ? 0 : i + 1);
      e.preventDefault();
    } else if (key === 'k' || key === 'arrowup' || key === 'arrowleft') {
      focusAt(i < 0 ? 0 : i - 1);
      e.preventDefault();
    } else if (i >= 0 && ['a', 'r', 'n'].includes(key)) {
      const btn = items()[i].querySelector(`button[data-key="${key}"]`);
      if (btn) {
        e.preventDefault();
        btn.click();
      }
    }
  });
}

function dropzone() {
  const zone = document.querySelector('[data-dropzone]');
  if (!zone) return;
  const input = zone.querySelector('input[type=file]');
  for (const ev of ['dragenter', 'dragover'])
    zone.addEventListener(ev, (e) => {
      e.preventDefault();
      zone.classList.add('over');
    });
  for (const ev of ['dragleave', 'drop']) zone.addEventListener(ev, () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    if (!e.dataTransfer?.files?.length) return;
    input.files = e.dataTransfer.files;
    zone.requestSubmit();
  });
  input.addEventListener('change', () => input.files?.length && zone.requestSubmit());
}

function confirmForms() {
  document.addEventListener('submit', (e) => {
    const msg = e.target.dataset?.confirm;
    if (msg && !window.confirm(msg)) e.preventDefault();
  });
}

reviewKeys();
dropzone();
confirmForms();
