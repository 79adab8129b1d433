
(function(){
  var cards=Array.prototype.slice.call(document.querySelectorAll('#cards .card'));
  var box=document.getElementById('cards'); if(!box){return;}
  document.getElementById('filters').hidden=false;
  function val(id){var el=document.getElementById(id);return el?el.value:'';}
  function apply(){
    var genre=val('f-genre'),err=val('f-error'),lo=parseFloat(val('f-min')),hi=parseFloat(val('f-max'));
    if(isNaN(lo)){lo=0;} if(isNaN(hi)){hi=1;}
    var shown=0;
    cards.forEach(function(c){
      var d=c.dataset,conf=parseFloat(d.conf),m=+d.missed,f=+d.false,ok=true;
      if(genre){ok=(d.pred+'|'+d.true).split('|').indexOf(genre)>=0;}
      if(err&&d.known!=='1'){ok=false;}
      if(ok&&err==='any'){ok=m+f>0;} if(ok&&err==='missed'){ok=m>0;}
      if(ok&&err==='false'){ok=f>0;} if(ok&&err==='correct'){ok=m+f===0;}
      if(ok){ok=conf>=lo-1e-9&&conf<=hi+1e-9;}
      c.hidden=!ok; if(ok){shown++;}
    });
    document.getElementById('shown').textContent=shown+' of '+cards.length+' shown';
  }
  function sort(){
    var how=val('f-sort'),key={
      'loss':function(d){return -parseFloat(d.loss||0);},'conf-desc':function(d){return -parseFloat(d.conf);},
      'conf-asc':function(d){return parseFloat(d.conf);},'name':function(d){return d.name;},
      'order':function(d){return +d.order;}}[how];
    cards.sort(function(a,b){var x=key(a.dataset),y=key(b.dataset);return x<y?-1:x>y?1:
      (a.dataset.key<b.dataset.key?-1:1);});
    cards.forEach(function(c){box.appendChild(c);});
  }
  ['f-genre','f-error','f-min','f-max'].forEach(function(id){var el=document.getElementById(id);
    if(el){el.addEventListener('input',apply);el.addEventListener('change',apply);}});
  document.getElementById('f-sort').addEventListener('change',function(){sort();apply();});
  apply();
})();
