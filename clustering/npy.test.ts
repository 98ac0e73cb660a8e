import { describe, expect, it } from 'vitest';
import { encodeNpy, parseNpy } from './npy.ts';
import { formatAssignments, parseAssignments } from './csv.ts';

describe('.npy', () => {
  it('round-trips a float32 [N, D] matrix', () => {
    const data = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2);
    const buf = encodeNpy({ rows: 3, cols: 4, data });
    expect((10 + buf.readUInt16LE(8)) % 64).toBe(0); // header aligned as numpy writes it
    const m = parseNpy(buf);
    expect([m.rows, m.cols]).toEqual([3, 4]);
    expect([...m.data]).toEqual([...data]);
  });

  it('reads float64 and refuses what it cannot read', () => {
    const header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }";
    const pre = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length, 0]);
    const body = Buffer.alloc(16);
    body.writeDoubleLE(1.5, 0);
    body.writeDoubleLE(-3, 8);
    expect([...parseNpy(Buffer.concat([pre, Buffer.from(header), body])).data]).toEqual([1.5, -3]);
    expect(() => parseNpy(Buffer.from('hello world'))).toThrow(/magic/);
    const fortran = header.replace('False', 'True');
    expect(() => parseNpy(Buffer.concat([pre, Buffer.from(fortran), body]))).toThrow(/Fortran/);
    expect(() => parseNpy(Buffer.concat([pre, Buffer.from(header), body.subarray(0, 8)]))).toThrow(
      /truncated/,
    );
  });
});

describe('assignments CSV', () => {
  it('round-trips ids with commas and empty clusters', () => {
    const text = formatAssignments(['a', 'b,c', 'd"e'], ['1', null, '2']);
    expect(text.split('\n')[0]).toBe('id,cluster');
    expect([...parseAssignments(text)]).toEqual([
      ['a', '1'],
      ['b,c', null],
      ['d"e', '2'],
    ]);
    expect(() => parseAssignments('x,y\n1,2\n')).toThrow(/header/);
    expect(() => parseAssignments('id,cluster\n1,2\n1,3\n')).toThrow(/duplicate/);
  });
});
